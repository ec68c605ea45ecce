"""Settings fail fast with the variable's name; a CUDA requirement that cannot be met stops start-up."""

from collections.abc import Callable

import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from facepipe.errors import ProviderUnavailableError
from service.config import Settings, SettingsError, load_settings
from service.main import create_app


def test_bad_environment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPRIME_BATCH_SIZE", "zero")
    with pytest.raises(SettingsError, match="DPRIME_BATCH_SIZE='zero'"):
        load_settings()
    monkeypatch.setenv("DPRIME_BATCH_SIZE", "8")
    monkeypatch.setenv("DPRIME_PROVIDERS", "tpu")
    with pytest.raises(SettingsError, match=r"DPRIME_PROVIDERS='tpu': .*expected 'auto' or a comma list"):
        load_settings()
    monkeypatch.setenv("DPRIME_PROVIDERS", "CUDA, cpu")
    s = load_settings()
    assert s.provider_list == ["cuda", "cpu"] and s.cuda_required and s.batch_size == 8


def test_devserver_exits_with_the_message(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from service import devserver

    monkeypatch.setenv("DPRIME_MULTIPLE_FACES", "sometimes")
    assert devserver.main() == 2


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA")
def test_required_cuda_that_is_not_in_use_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ProviderUnavailableError, match="CUDA was required but onnxruntime is using"):
        with TestClient(create_app(make_settings(providers="cuda,cpu"))):
            pass
