"""The standalone server: request pipeline (prep -> log -> commit) and its asyncio shell."""
