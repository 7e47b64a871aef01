"""Download the raw locomotion files (SubjectN.mat, N = 1..50) from the figshare collection of Lencioni et al.

Collection doi:10.6084/m9.figshare.c.4494755 (CC BY 4.0). Files are listed through the public figshare API,
downloaded to `NAME.part`, resumed from where an interrupted download stopped (HTTP range requests), verified
against figshare's MD5 and only then renamed to `NAME`. Files already present with the right MD5 are skipped.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from jaxphysvae.data.locomotion import md5sum
from jaxphysvae.data.raw import SUBJECT_FILE
from jaxphysvae.errors import DataError

API = "https://api.figshare.com/v2"
COLLECTION_ID = 4494755
CHUNK = 1 << 20


def _get_json(url: str, opener: Callable):
    with opener(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=60) as r:
        return json.loads(r.read().decode())


def list_files(opener: Callable = urllib.request.urlopen) -> list[dict]:
    """The SubjectN.mat files of the collection: dicts with 'name', 'size', 'download_url' and 'md5'."""
    files, page = [], 1
    while True:
        articles = _get_json(f"{API}/collections/{COLLECTION_ID}/articles?page={page}&page_size=100", opener)
        for article in articles:
            for f in _get_json(f"{API}/articles/{article['id']}", opener).get("files", []):
                if SUBJECT_FILE.match(f["name"]):
                    files.append({"name": f["name"], "size": int(f["size"]), "download_url": f["download_url"],
                                  "md5": f.get("computed_md5") or f.get("supplied_md5")})
        if len(articles) < 100:
            return sorted(files, key=lambda f: int(SUBJECT_FILE.match(f["name"]).group(1)))
        page += 1


def fetch(entry: dict, out_dir: Path, opener: Callable = urllib.request.urlopen) -> Path:
    """Download one file, resuming a partial `.part` file, and verify its MD5 before renaming it into place."""
    target, part = out_dir / entry["name"], out_dir / (entry["name"] + ".part")
    if target.is_file() and (entry["md5"] is None or md5sum(target) == entry["md5"]):
        return target
    have = part.stat().st_size if part.is_file() else 0
    if have >= entry["size"]:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with opener(urllib.request.Request(entry["download_url"], headers=headers), timeout=60) as response:
        resumed = have and getattr(response, "status", 200) == 206
        with open(part, "ab" if resumed else "wb") as f:
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
    if entry["md5"] is not None and md5sum(part) != entry["md5"]:
        part.unlink()
        raise DataError(f"{entry['name']}: MD5 mismatch after download; the partial file was removed, run again")
    os.replace(part, target)
    return target


def download(out_dir: str | os.PathLike, opener: Callable = urllib.request.urlopen,
             progress: Callable[[str], None] = print) -> list[Path]:
    """Download every SubjectN.mat of the collection into `out_dir` (resumable, verified); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        entries = list_files(opener)
        paths = []
        for i, entry in enumerate(entries, 1):
            progress(f"[{i}/{len(entries)}] {entry['name']} ({entry['size'] / 1e6:.1f} MB)")
            paths.append(fetch(entry, out_dir, opener))
        return paths
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        if isinstance(e, urllib.error.HTTPError):
            reason = f"HTTP {e.code} {e.reason}"
        else:
            reason = str(getattr(e, "reason", e))
        raise DataError(f"cannot download from figshare ({reason}). Without network access, download the "
                        f"SubjectN.mat files of doi:10.6084/m9.figshare.c.4494755 by hand into {out_dir}; "
                        f"partial downloads resume when you run this again.") from None
