"""The cookbook's "journey to Mars", replayed offline from cassettes/journey_to_mars.json.

Two unseeded calls give two different stories; two calls with seed 123 give the same
story, and the fingerprint says the backend did not change in between. Run it with no
arguments to replay (no API key, no network). With ``--mode record`` and OPENAI_API_KEY
set, it calls the API and records afresh.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

import openai

import seedcache

HERE = Path(__file__).resolve().parent
DEFAULT_CASSETTE = HERE.parent / "cassettes" / "journey_to_mars.json"
sys.path.insert(0, str(HERE))

from _cookbook import MODEL, SEED, SYSTEM_MESSAGE, USER_REQUEST  # noqa: E402

_COLOUR = sys.stdout.isatty() and "NO_COLOR" not in os.environ
RED, GREEN, RESET = ("\033[31m", "\033[32m", "\033[0m") if _COLOUR else ("", "", "")


def get_chat_response(
    client: openai.OpenAI, system_message: str, user_request: str, seed: int | None = None
) -> str:
    """One chat completion, printed the way the cookbook shows it."""
    messages = [
        {"role": "system", "content": system_message},
        {"role": "user", "content": user_request},
    ]
    extra = {"seed": seed} if seed is not None else {}
    response = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=200, temperature=0.7, **extra
    )
    content = response.choices[0].message.content or ""
    usage = response.usage
    assert usage is not None
    print(f"Response:            {content}")
    print(f"System fingerprint:  {response.system_fingerprint}")
    print(f"Prompt tokens:       {usage.prompt_tokens}")
    print(f"Completion tokens:   {usage.total_tokens - usage.prompt_tokens}")
    print()
    return content


def compare_responses(previous_response: str, response: str) -> None:
    """Line diff of two stories: deletions in red, additions in green."""
    diff = difflib.Differ().compare(previous_response.splitlines(), response.splitlines())
    changed = False
    lines = []
    for line in diff:
        if line.startswith("- "):
            lines.append(f"{RED}{line}{RESET}")
            changed = True
        elif line.startswith("+ "):
            lines.append(f"{GREEN}{line}{RESET}")
            changed = True
        elif not line.startswith("? "):
            lines.append(line)
    print("\n".join(lines) if changed else "No differences found.")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="replay", choices=[m.value for m in seedcache.Mode])
    parser.add_argument("--cassette", type=Path, default=DEFAULT_CASSETTE)
    args = parser.parse_args(argv)

    api_key = os.environ.get("OPENAI_API_KEY") or "unused-in-replay"
    try:
        with seedcache.SeedCache.cassette(args.cassette, mode=args.mode) as cache:
            client = cache.wrap(openai.OpenAI(api_key=api_key))
            print("Without a seed, twice:\n")
            previous = get_chat_response(client, SYSTEM_MESSAGE, USER_REQUEST)
            current = get_chat_response(client, SYSTEM_MESSAGE, USER_REQUEST)
            compare_responses(previous, current)

            print(f"With seed {SEED}, twice:\n")
            previous = get_chat_response(client, SYSTEM_MESSAGE, USER_REQUEST, SEED)
            current = get_chat_response(client, SYSTEM_MESSAGE, USER_REQUEST, SEED)
            compare_responses(previous, current)
            stats = cache.stats()
            print(f"seedcache: {stats.as_dict()}")
            saved = stats.cost_saved_usd
            cost = "price unknown" if saved is None else f"${saved:.4f}"
            if stats.hits:  # a recording run replays nothing, so saves nothing
                print(f"seedcache: replays saved {stats.tokens_saved} tokens ({cost})")
    except seedcache.SeedCacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
