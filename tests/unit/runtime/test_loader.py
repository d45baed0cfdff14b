"""loader: S3 code objects over the size limit are an error, never silently truncated."""

from __future__ import annotations

import pytest

from vortex_runtime.errors import CodeLoadError
from vortex_runtime.loader import MAX_CODE_BYTES, S3Loader
from vortex_runtime.settings import MinioSettings


class FakeObject:
    """Just enough of the urllib3 response that `Minio.get_object` returns."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False

    def read(self, amt: int | None = None) -> bytes:
        return self.data if amt is None else self.data[:amt]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        self.released = True


class FakeMinio:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.responses: list[FakeObject] = []

    def get_object(self, bucket: str, key: str) -> FakeObject:
        response = FakeObject(self.objects[key])
        self.responses.append(response)
        return response


def loader_with(objects: dict[str, bytes]) -> tuple[S3Loader, FakeMinio]:
    loader = S3Loader(MinioSettings(endpoint="127.0.0.1:1", bucket="b"))
    fake = FakeMinio(objects)
    loader._client = fake  # type: ignore[assignment]
    return loader, fake


async def test_code_at_the_limit_loads_whole() -> None:
    code = "return 1\n//" + "x" * (MAX_CODE_BYTES - 11)
    assert len(code.encode()) == MAX_CODE_BYTES
    loader, fake = loader_with({"fn.js": code.encode()})
    assert await loader.load("fn.js") == code
    assert all(r.released for r in fake.responses)


async def test_code_over_the_limit_is_a_code_load_error() -> None:
    loader, fake = loader_with({"big.js": b"x" * (MAX_CODE_BYTES + 1)})
    with pytest.raises(CodeLoadError) as raised:
        await loader.load("big.js")
    assert raised.value.message == (
        f"The code object s3://b/big.js is over the limit of {MAX_CODE_BYTES} bytes"
    )
    assert raised.value.status == 503
    assert all(r.released for r in fake.responses)
