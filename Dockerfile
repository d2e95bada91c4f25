# The MemCube image: one image, every process (api, worker, beat, migrate) picks its command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
# torch first and pinned to the CPU build used in development; override for another platform.
ARG TORCH_SPEC=torch==2.13.0
RUN pip install --no-cache-dir "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY memcube ./memcube
COPY services ./services
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-cache-dir .
# The ONNX export of the default embedder is made here, once, not at each container's first start.
ENV MEMCUBE_MODEL_CACHE=/app/models
RUN python -m memcube.onnx_embedder
RUN useradd --create-home memcube
USER memcube
EXPOSE 8000
CMD ["memcube", "api"]
