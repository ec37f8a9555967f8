"""The ``trt-inpaint`` command: routes to the capability that a command line asks for.

    trt-inpaint IMG MASK ... / --images DIR ...    runtime.cli (this process)
    trt-inpaint serve ...                          serve.cli (HTTP service; the `serve` extra)
    trt-inpaint --images DIR ... --ray [ADDR]      distributed.cli (Ray Data; the `ray` extra)

Each capability depends on the runtime; the runtime knows none of them.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from trt_inpaint.serve.cli import main as serve_main

        return serve_main(argv[1:])
    if any(a == "--ray" or a.startswith("--ray=") for a in argv):
        from trt_inpaint.distributed.cli import main as ray_main

        return ray_main(argv)
    from trt_inpaint.runtime.cli import main as runtime_main

    return runtime_main(argv)


if __name__ == "__main__":
    sys.exit(main())
