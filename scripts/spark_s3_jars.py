"""Put the S3 connector jars for a local Spark (hadoop-aws 3.3.1 and the AWS SDK v1 bundle) in a folder.

Maven is not reachable here; PyPI's ``sagemaker_pyspark`` 1.4.5 source archive carries both jars. It
is downloaded with pip, checked against known digests, and the two jars are extracted. Nothing is
done when the folder already holds them. Usage: ``python scripts/spark_s3_jars.py [FOLDER]``
(default ``.cache/spark-s3``); prints the ``spark.jars`` value.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "sagemaker_pyspark==1.4.5"
ARCHIVE = "sagemaker_pyspark-1.4.5.tar.gz"
ARCHIVE_SHA256 = "05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb"
JARS = {
    "hadoop-aws-3.3.1.jar": "6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e",
    "aws-java-sdk-bundle-1.11.901.jar": "b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead",
}
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / ".cache" / "spark-s3"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def present(folder: Path) -> bool:
    return all((folder / name).is_file() for name in JARS)


def fetch(folder: Path) -> list[Path]:
    """The jars in ``folder``, downloaded and extracted first when missing.

    Raises:
        RuntimeError: pip failed, or a digest does not match.
    """
    if present(folder):
        return [folder / name for name in JARS]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", scratch],
            capture_output=True,
            text=True,
        )
        archive = Path(scratch) / ARCHIVE
        if done.returncode != 0 or not archive.is_file():
            raise RuntimeError(f"pip download {PACKAGE} failed:\n{done.stderr.strip()}")
        if sha256(archive) != ARCHIVE_SHA256:
            raise RuntimeError(f"{ARCHIVE}: unexpected sha256 {sha256(archive)}")
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in JARS and member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    partial = Path(scratch) / name
                    partial.write_bytes(source.read())
                    if sha256(partial) != JARS[name]:
                        raise RuntimeError(f"{name}: unexpected sha256 {sha256(partial)}")
                    partial.replace(folder / name)
    if not present(folder):
        raise RuntimeError(f"{ARCHIVE} lacks {', '.join(n for n in JARS if not (folder / n).is_file())}")
    return [folder / name for name in JARS]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    print(",".join(str(jar) for jar in fetch(target.resolve())))
