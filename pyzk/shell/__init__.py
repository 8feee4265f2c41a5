"""The asyncio shell: every socket, file, thread and clock of the server."""
