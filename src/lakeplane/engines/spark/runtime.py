"""Finding Spark and Java, and starting and stopping the driver JVM of this process.

One driver JVM per process at most (pyspark's rule). A job reuses it when its settings are the
same as the previous job's; otherwise the old driver is stopped and a new one launched. The driver
is stopped for good when the process exits; it also exits by itself when the process dies, since
it watches its parent's pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lakeplane.errors import EngineError, MissingDependencyError

CONF_DIR = Path(__file__).with_name("conf")
LOG_CONFIG = CONF_DIR / "log4j2.properties"
JAVA_MIN = 17

#: Settings that may differ between jobs sharing one driver (folders only).
PER_JOB = ("spark.local.dir", "spark.sql.warehouse.dir")

_active: tuple[tuple[tuple[str, str], ...], Any] | None = None


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def java_options() -> str:
    return f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}"


def require_java() -> str:
    """The ``java`` command Spark will use.

    Raises:
        MissingDependencyError: no Java, or one older than 17.
    """
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH and JAVA_HOME unset"
        raise MissingDependencyError(
            f"engine 'spark' needs Java {JAVA_MIN} or newer: {where} "
            "(Debian: apt-get install openjdk-17-jre-headless)",
            extra="spark",
        )
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingDependencyError(f"engine 'spark': cannot run {java}: {exc}", extra="spark") from None
    version = _java_major(shown)
    if version is not None and version < JAVA_MIN:
        raise MissingDependencyError(
            f"engine 'spark' needs Java {JAVA_MIN} or newer; {java} is Java {version}", extra="spark"
        )
    return java


def _java_major(banner: str) -> int | None:
    for token in banner.replace('"', " ").split():
        head = token.split(".")[0].split("-")[0]
        if head.isdigit() and ("." in token or token.isdigit()):
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def driver(conf: dict[str, str]) -> Any:
    """A pyspark ``SparkSession`` with exactly ``conf``, reusing this process's driver if it matches."""
    global _active
    key = tuple(sorted((k, v) for k, v in conf.items() if k not in PER_JOB))
    if _active is not None and _active[0] == key:
        return _active[1]
    stop_driver()
    require_java()
    os.environ.setdefault("SPARK_CONF_DIR", str(CONF_DIR))  # quiet logging from the first line
    # pyspark logs every failed query's JVM stack as JSON; lakeplane raises it as one EngineError.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for name, value in conf.items():
        builder = builder.config(name, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: its reason is in the message
        stop_driver()
        raise EngineError(
            f"Spark driver did not start: {str(exc).strip().splitlines()[0]}", retryable=False
        ) from None
    _active = (key, session)
    return session


def stop_driver() -> None:
    """Stop this process's Spark driver and its JVM, if one runs."""
    global _active
    from pyspark import SparkContext

    session = _active[1] if _active else None
    _active = None
    if session is not None:
        with contextlib.suppress(Exception):  # a driver already gone has nothing left to stop
            session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if process is not None:
        try:
            if process.stdin:
                process.stdin.close()  # the JVM exits when its parent's pipe closes
            process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


atexit.register(lambda: stop_driver() if _active else None)
