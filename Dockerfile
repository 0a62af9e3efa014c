# One image, several entry points: `troth api | projector | scheduler | migrate | serve`.
# Build: docker build -t troth:0.1.0 .   (the k8s manifests run `troth <command>`)

FROM python:3.12-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/troth
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY service ./service
# A regular (not editable) install: the final image holds the venv and nothing from /src.
RUN /opt/troth/bin/pip install . \
    && /opt/troth/bin/pip uninstall --yes pip

FROM python:3.12-slim-bookworm
ENV PATH=/opt/troth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TROTH_HOST=0.0.0.0
# The venv from the build stage only: no compilers, no pip, no sources in this image.
COPY --from=build /opt/troth /opt/troth
RUN groupadd --system --gid 10001 troth \
    && useradd --system --uid 10001 --gid troth --no-create-home --shell /usr/sbin/nologin troth
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 9100
ENTRYPOINT ["troth"]
CMD ["api"]
