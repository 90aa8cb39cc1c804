"""``import lorareg`` stays light: the loader's names are lazy and torch is imported only on first use."""

from __future__ import annotations

import subprocess
import sys


def test_import_lorareg_does_not_import_torch_until_the_loader_is_used() -> None:
    code = (
        "import sys, lorareg;"
        "print(sorted(m for m in ('torch', 'diffusers', 'peft', 'transformers') if m in sys.modules));"
        "from lorareg import attribution, save_image;"
        "print('torch' in sys.modules);"
        "from lorareg import load_verified_lora, unload_lora;"
        "print('torch' in sys.modules, load_verified_lora.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "False", "True lorareg.loader.load"]


def test_public_names_are_listed_in_all_sorted_and_importable() -> None:
    import lorareg

    assert lorareg.__all__ == sorted(lorareg.__all__)
    assert {
        "Client",
        "Manifest",
        "attribution",
        "inspect_file",
        "load_verified_lora",
        "save_image",
        "unload_lora",
        "verify",
    } <= set(lorareg.__all__)
    for name in lorareg.__all__:
        assert getattr(lorareg, name) is not None, name
    assert lorareg.verify.__name__ == "verify_file"


def test_attribution_stays_the_function_after_its_module_is_imported() -> None:
    import lorareg
    import lorareg.images.provenance  # noqa: F401 - importing a submodule must not shadow the public name

    assert callable(lorareg.attribution)
    assert lorareg.attribution.__name__ == "attribution"
