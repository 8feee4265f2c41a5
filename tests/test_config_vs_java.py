"""parse_properties against java.util.Properties itself, on random texts.

Kept apart from test_config.py because it runs java: it is a ``reference``
test, the rest of the config tests are ``pure``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pyzk.config import ConfigError, parse_properties

pytestmark = pytest.mark.reference


_PROPS_DUMPER = r"""
import java.io.*;
import java.util.*;

public class PropsDump {
    public static void main(String[] args) throws Exception {
        StringBuilder out = new StringBuilder();
        for (String path : args) {
            Properties p = new Properties();
            String error = null;
            try (InputStream in = new FileInputStream(path)) {
                p.load(in);
            } catch (IllegalArgumentException e) {
                error = "bad";
            }
            out.append("FILE\n");
            if (error != null) { out.append("ERROR\n"); continue; }
            TreeMap<String, String> sorted = new TreeMap<>();
            for (String k : p.stringPropertyNames()) sorted.put(k, p.getProperty(k));
            for (Map.Entry<String, String> e : sorted.entrySet()) {
                out.append(codes(e.getKey())).append('=').append(codes(e.getValue())).append('\n');
            }
        }
        System.out.print(out);
    }

    static String codes(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) b.append((int) c).append(',');
        return b.toString();
    }
}
"""


def _random_properties_text(rng: random.Random) -> str:
    atoms = ["a", "b", "key", "x.y", "=", ":", " ", "\t", "\f", "\\", "\\\\", "#", "!"]
    atoms += ["\n", "\r", "\r\n", "\\\n", "\\\r\n", "\\u0041", "\\t", "\\n", "\\=", "\\ "]
    atoms += ["\u00e9", "1", "\\u00"]
    return "".join(rng.choice(atoms) for _ in range(rng.randint(0, 40)))


def _codes(s: str) -> str:
    return "".join(f"{ord(c)}," for c in s)


def test_properties_parser_matches_java(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    src = tmp_path / "PropsDump.java"
    src.write_text(_PROPS_DUMPER)
    rng = random.Random(20240607)
    texts = [_random_properties_text(rng) for _ in range(400)]
    files = []
    for i, text in enumerate(texts):
        path = tmp_path / f"p{i}.properties"
        path.write_bytes(text.encode("latin-1"))
        files.append(str(path))
    result = subprocess.run(
        ["java", str(src), *files], capture_output=True, text=True, check=True, timeout=120
    )
    java_blocks = result.stdout.split("FILE\n")[1:]
    assert len(java_blocks) == len(texts)
    for text, java_block in zip(texts, java_blocks, strict=True):
        try:
            props = parse_properties(text)
        except ConfigError:
            mine = "ERROR\n"
        else:
            mine = "".join(f"{_codes(k)}={_codes(v)}\n" for k, v in sorted(props.items()))
        assert mine == java_block, repr(text)
