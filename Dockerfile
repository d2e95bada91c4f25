# The MemCube image: one image, every process (api, worker, beat, migrate, mcp) picks its command.
# Built in two stages: the first builds the wheel, the second installs only that wheel, so the image runs
# from what the wheel carries (migrations and prompts as package data), never from a source tree.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY memcube ./memcube
COPY services ./services
COPY workers ./workers
COPY migrations ./migrations
COPY sdk/python/memcube_client ./sdk/python/memcube_client
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# torch first and pinned; TORCH_INDEX_URL may name PyTorch's CPU-only wheel index (see ./dev for why).
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist
# The ONNX export of the default embedder is made here, once, not at each container's first start.
ENV MEMCUBE_MODEL_CACHE=/opt/memcube/models
RUN python -m memcube.onnx_embedder && chmod -R a+rX /opt/memcube
RUN useradd --create-home memcube
USER memcube
WORKDIR /home/memcube
EXPOSE 8000 8001
CMD ["memcube", "api"]
