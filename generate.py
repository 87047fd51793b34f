"""Run the handouts command from a checkout: python generate.py ..."""

from handouts.cli import cli

if __name__ == "__main__":
    cli()
