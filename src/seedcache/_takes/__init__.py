"""What one key holds: takes and entries (``_take``), and what a person reads in them
(``_content``: text, tool calls, token usage). Plain data, used by every layer above."""
