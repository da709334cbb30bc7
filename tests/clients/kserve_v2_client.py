"""Talks to a server with KServe's own InferenceRESTClient (protocol v2); runs in .venv-kserve.

    .venv-kserve/bin/python tests/clients/kserve_v2_client.py URL MODEL < tensors.json

stdin: {"inputs": [{"name", "datatype", "shape", "data"}], "top_k": k}. Prints one JSON object:
liveness and readiness as the client reads them, and the outputs of a JSON-input and a
binary-input inference (each output as a nested list), and the error of an unknown model.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def tensors(spec: dict[str, Any], binary: bool) -> list[InferInput]:
    inputs = []
    for item in spec["inputs"]:
        dtype = np.object_ if item["datatype"] == "BYTES" else np.float64
        data = np.array(item["data"], dtype=dtype).reshape(item["shape"])
        tensor = InferInput(item["name"], item["shape"], item["datatype"])
        tensor.set_data_from_numpy(data, binary_data=binary)
        inputs.append(tensor)
    return inputs


def outputs(response: Any) -> dict[str, Any]:
    answer = {}
    for output in response.outputs:
        values = output.as_numpy().tolist()
        answer[output.name] = json.loads(json.dumps(values, default=bytes.decode))
    return answer


async def run(url: str, model: str, spec: dict[str, Any]) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=60))
    report: dict[str, Any] = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
    }
    for binary in (False, True):
        request = InferRequest(
            model, tensors(spec, binary), request_id=f"kserve-{binary}",
            parameters={"top_k": spec["top_k"]},
        )  # fmt: skip
        response = await client.infer(url, request, model_name=model)
        report["binary" if binary else "json"] = {"id": response.id, "outputs": outputs(response)}
    try:
        await client.infer(url, InferRequest("nope", tensors(spec, False)), model_name="nope")
    except httpx.HTTPStatusError as error:
        report["unknown_model"] = {"status": error.response.status_code, "message": str(error)}
    await client.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2], json.load(sys.stdin)))))
