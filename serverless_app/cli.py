"""``wschat``: the project's command line. Each subcommand lives in its own module and is registered here."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Real-time WebSocket chat on API Gateway + Lambda + DynamoDB, and its local runtime."""


def _register() -> None:
    from serverless_app.local.serve import serve

    main.add_command(serve)  # wschat serve
    from serverless_app.bench.cli import bench

    main.add_command(bench)  # wschat bench
    from serverless_app.clients.token_cmd import token

    main.add_command(token)  # wschat token
    from serverless_app.clients.chat_cmd import chat

    main.add_command(chat)  # wschat chat
    from serverless_app.local.stats_cmd import stats

    main.add_command(stats)  # wschat stats


_register()

if __name__ == "__main__":
    main()
