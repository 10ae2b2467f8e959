"""``python -m gql_history``: the ``gql-history`` command."""

from .cli import main

if __name__ == "__main__":
    main()
