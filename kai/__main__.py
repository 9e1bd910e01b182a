"""kai's launcher: `python -m kai` and the `kai` / `kubectl-kai` scripts.

`kai --help` is answered from the text the full CLI rendered last time, when it is still current
(kai/startup.py); a plain `kai review` or `kai validate` of files runs without typer (kai/direct.py);
every other run, and a help text not cached yet, goes to kai.cli.main.
"""

from __future__ import annotations

import sys


def main() -> None:
    import gc

    # kai builds many small acyclic objects (a 50 MB review: millions of dicts and findings, few
    # cycles): at the default gen-0 threshold (700) the collector ran ~5 s of a 27 s review of
    # 60,000 Deployments (benchmarks/hostile.py json-list). Collect 100x less often.
    gc.set_threshold(100_000, 50, 100)
    from kai import startup

    if sys.argv[1:] in startup.HELP_ARGS and (text := startup.cached_help()) is not None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `kai --help | head`: as kai.cli.main, no traceback
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    from kai import direct

    if (call := direct.parse(sys.argv[1:])) is not None:
        direct.finish(call)
    from kai.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
