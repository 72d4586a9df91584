import subprocess
import sys
import types

import galgen


def test_every_public_name_is_a_function_or_class_not_a_module():
    for name in galgen._PUBLIC:
        value = getattr(galgen, name)
        assert not isinstance(value, types.ModuleType), name
        assert callable(value), name
    assert set(galgen._PUBLIC) <= set(dir(galgen))


def test_import_galgen_is_light():
    code = "import sys, galgen; assert not {'torch', 'astropy', 'galsim'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
