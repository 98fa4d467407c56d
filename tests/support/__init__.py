"""What every test folder shares: bounded waits (``waiting``), the test chat client (``chat_client``),
local stacks (``stacks``), reads of the chat's tables (``tables``) and the table of bad frames
(``bad_frames``)."""
