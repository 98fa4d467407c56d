"""What every test folder shares: bounded waits, the test chat client, local stacks."""
