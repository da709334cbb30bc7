"""The Open Inference Protocol (v2) against the real server, spoken by clients no one here wrote:
NVIDIA's tritonclient[http] (JSON and binary tensors) and KServe's InferenceRESTClient (run in
its own venv, `make kserve-client`). Their answers must equal /v1/predict's for the same
products."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.support import REPO, Registry, ServingProcess, sample_records

pytestmark = pytest.mark.integration

TOP_K = 3


def catalog_products(fields: list[dict[str, str]], count: int = 6) -> list[dict[str, Any]]:
    """Real products, keyed by the model's fields, in forms a tensor carries: strings, lists of
    strings, numbers (0 when the catalog has none: JSON tensors have no NaN for a missing value)."""
    products = []
    for record in sample_records(limit=count):
        product: dict[str, Any] = {}
        for field in fields:
            name, value = field["name"], record.get(field["name"])
            if field["role"] == "numeric":
                product[name] = as_number(value)
            elif isinstance(value, list) and any(str(v).strip() for v in value):
                product[name] = [str(v) for v in value if str(v).strip()]
            elif isinstance(value, str) and value.strip():
                product[name] = value
        products.append(product)
    return products


def as_number(value: Any) -> float:
    try:
        return float(str(value).strip("$").replace(",", ""))
    except ValueError:
        return 0.0


def as_tensors(products: list[dict[str, Any]], fields: list[dict[str, str]]) -> list[dict]:
    """One tensor per field: FP64 for numbers, BYTES [rows] for strings, BYTES [rows, items]
    padded with "" for lists."""
    tensors = []
    for field in fields:
        name = field["name"]
        values = [p.get(name, "") for p in products]
        if field["role"] == "numeric":
            tensors.append(tensor(name, "FP64", [len(values)], values))
        elif any(isinstance(v, list) for v in values):
            rows = [v if isinstance(v, list) else [v] for v in values]
            width = max(len(r) for r in rows)
            data = [r + [""] * (width - len(r)) for r in rows]
            tensors.append(tensor(name, "BYTES", [len(rows), width], data))
        else:
            tensors.append(tensor(name, "BYTES", [len(values)], values))
    return tensors


def tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def v1_expected(server: ServingProcess, products: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """What /v1/predict answers for the same products, as the v2 outputs would carry it."""
    status, answer = server.post("/v1/predict", {"products": products, "top_k": TOP_K})
    assert status == 200, answer
    predictions = answer["predictions"]
    return {
        "label": [p["label"] for p in predictions],
        "probability": [p["probability"] for p in predictions],
        "top_labels": [[e["label"] for e in p["top_k"]] for p in predictions],
        "top_probabilities": [[e["probability"] for e in p["top_k"]] for p in predictions],
    }


def assert_same_answer(got: dict[str, Any], expected: dict[str, list[Any]]) -> None:
    assert got["label"] == expected["label"]
    assert got["top_labels"] == expected["top_labels"]
    np.testing.assert_array_equal(
        np.asarray(got["probability"], np.float32), np.asarray(expected["probability"], np.float32)
    )
    np.testing.assert_array_equal(
        np.asarray(got["top_probabilities"], np.float32),
        np.asarray(expected["top_probabilities"], np.float32),
    )


def triton_inputs(tensors: list[dict[str, Any]], binary: bool) -> list[triton.InferInput]:
    inputs = []
    for spec in tensors:
        dtype = np.object_ if spec["datatype"] == "BYTES" else np.float64
        data = np.array(spec["data"], dtype=dtype).reshape(spec["shape"])
        item = triton.InferInput(spec["name"], spec["shape"], spec["datatype"])
        item.set_data_from_numpy(data, binary_data=binary)
        inputs.append(item)
    return inputs


def triton_outputs(result: triton.InferResult) -> dict[str, Any]:
    decode = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b, otypes=[object])
    answer = {}
    for name in ("label", "probability", "top_labels", "top_probabilities"):
        values = result.as_numpy(name)
        answer[name] = (decode(values) if values.dtype == object else values).tolist()
    return answer


def test_tritonclient_json_and_binary_tensors(
    serve_registry: Callable[..., ServingProcess], registry: Registry
) -> None:
    server = serve_registry()
    fields = server.get("/v1/model")[1]["input_fields"]
    products = catalog_products(fields)
    expected = v1_expected(server, products)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    name, version = registry.model_name, registry.version
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(name) and client.is_model_ready(name, version)
    assert not client.is_model_ready(name, "999")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    inputs = [
        (i["name"], i["datatype"], i["shape"]) for i in client.get_model_metadata(name)["inputs"]
    ]
    forms = [
        (f["name"], "FP64" if f["role"] == "numeric" else "BYTES", metadata_shape(f))
        for f in fields
    ]
    assert inputs == forms
    for path in ("/v2/health/ready", f"/v2/models/{name}"):  # HEAD, as probes send it: no body
        head = urllib.request.Request(server.url + path, method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200 and response.read() == b"", path

    tensors = as_tensors(products, fields)
    for binary in (True, False):  # binary inputs and binary outputs are tritonclient's default
        outputs = None if binary else [triton.InferRequestedOutput(n, binary_data=False)
                                       for n in expected]  # fmt: skip
        result = client.infer(
            name, triton_inputs(tensors, binary), model_version=version, outputs=outputs,
            request_id=f"triton-{binary}", parameters={"top_k": TOP_K},
        )  # fmt: skip
        assert result.get_response()["id"] == f"triton-{binary}"
        assert_same_answer(triton_outputs(result), expected)

    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", triton_inputs(tensors, True))
    assert unknown.value.status() == "404"
    assert f"serves '{name}'" in unknown.value.message()
    with pytest.raises(InferenceServerException) as stale:
        client.infer(name, triton_inputs(tensors, True), model_version="999")
    assert stale.value.status() == "404"
    assert f"the served version is '{version}'" in stale.value.message()


def metadata_shape(field: dict[str, str]) -> list[int]:
    """[-1, -1] for a field that takes a list per product, [-1] for one value per product."""
    lists = field["type"] in ("text", "tokens", "json") and field["role"] != "id"
    return [-1, -1] if lists else [-1]


def test_kserve_inference_rest_client(
    serve_registry: Callable[..., ServingProcess], registry: Registry
) -> None:
    python = kserve_python()
    server = serve_registry()
    fields = server.get("/v1/model")[1]["input_fields"]
    products = catalog_products(fields)
    expected = v1_expected(server, products)
    spec = {"inputs": as_tensors(products, fields), "top_k": TOP_K}
    script = REPO / "tests" / "clients" / "kserve_v2_client.py"
    done = subprocess.run(
        [str(python), str(script), server.url, registry.model_name],
        input=json.dumps(spec), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["live"], report["ready"], report["model_ready"]) == (True, True, True)
    for form in ("json", "binary"):
        assert report[form]["id"] == f"kserve-{form == 'binary'}"
        assert_same_answer(report[form]["outputs"], expected)
    assert report["unknown_model"]["status"] == 404
    assert "unknown model 'nope'" in report["unknown_model"]["message"]


def kserve_python() -> Any:
    """.venv-kserve's python (`make kserve-client` installs it), or a failure saying how."""
    done = subprocess.run(
        ["make", "--no-print-directory", "kserve-client"], cwd=REPO, capture_output=True,
        text=True, timeout=1200,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"`make kserve-client` failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return REPO / ".venv-kserve" / "bin" / "python"
