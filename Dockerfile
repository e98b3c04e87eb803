# The one project image, three roles: processing (entry point `python3 -m sagemaker_jobs.<step>`),
# training (`train`) and serving (`serve`, port 8080 or SAGEMAKER_BIND_TO_PORT). Code is baked in, so the
# pipeline definition uploads nothing, and training and serving share one scikit-learn.
# Built by `cdk deploy` (DockerImageAsset); `cdk synth` and the tests never build it.
FROM python:3.11.7-slim-bookworm

# The two memory settings are sagemaker_jobs.resources.MEMORY_ENV: freed buffers go back to the
# system (Arrow's allocator and glibc's heap keep them otherwise, and a job's peak counts them).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARROW_DEFAULT_MEMORY_POOL=system \
    MALLOC_MMAP_THRESHOLD_=4194304

WORKDIR /opt/program

# Dependencies first, so code edits do not rebuild this layer.
COPY constraints.txt ./
RUN python3 -m pip install -c constraints.txt \
        scikit-learn pandas pyarrow pydantic uvicorn uvloop httptools \
        prometheus-client scipy matplotlib onnxruntime onnx

COPY pyproject.toml README.md ./
COPY sagemaker_jobs ./sagemaker_jobs
COPY inference ./inference
# The import check also builds matplotlib's font cache once, not in every evaluate job.
RUN python3 -m pip install --no-deps . \
    && python3 -c "import sagemaker_jobs.train, sagemaker_jobs.fingerprint, sagemaker_jobs.preprocess, sagemaker_jobs.evaluate, sagemaker_jobs.compile, inference.app, inference.metrics, inference.compiled, onnx, onnxruntime" \
    && python3 -c "import matplotlib.font_manager"

COPY --chmod=755 docker/train docker/serve /usr/local/bin/
EXPOSE 8080
# No USER: SageMaker mounts /opt/ml (model, output, channels) owned by root.
