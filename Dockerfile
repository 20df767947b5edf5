# switchyard as a container: multi-stage, production dependencies only, non-root, health-checked.
#
#   docker build -t switchyard .                                   # official Node LTS base
#   buildah bud --format docker --build-arg BASE=localhost/switchyard-base:node26.12.1 \
#     -t localhost/switchyard .                                    # a local base (no registry)
#
# BASE is any Debian- or Alpine-based image with node and npm on PATH (the official node:*-slim
# images, or the one scripts/container/build-base.sh makes). Build with `--format docker` under
# buildah/podman: the OCI image format has no HEALTHCHECK.
# docs/container.md explains building, running and the MCP network compose file.
ARG BASE=node:26-slim

# ---- build: all dependencies, compile TypeScript and the page, then drop the dev dependencies ----
FROM ${BASE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` (tsc) runs below once the sources are in.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
# The stats page's browser build (esbuild, a dev dependency pruned below) → dist/stats-page.
COPY scripts/build-page.js ./scripts/
COPY bin ./bin
COPY examples ./examples
# What the runtime needs, gathered in /out so that it is one COPY (one layer) below.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete \
 && mkdir /out \
 && cp -a package.json package-lock.json node_modules dist bin examples /out/

# ---- runtime ---------------------------------------------------------------------------------
FROM ${BASE}
# A dedicated non-root user with a fixed uid (the same on every base, numeric for runAsNonRoot).
RUN set -e; \
    if command -v useradd >/dev/null; then \
      groupadd --system --gid 10001 switchyard; \
      useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin switchyard; \
    else \
      addgroup -S -g 10001 switchyard && adduser -S -D -H -u 10001 -G switchyard -h /nonexistent -s /sbin/nologin switchyard; \
    fi
ENV NODE_ENV=production \
    SWITCHYARD_HEALTH_URL=http://127.0.0.1:11099/health
WORKDIR /app
COPY --from=build /out/ /app/
# The default config: stats on 0.0.0.0:11099 and one HTTP frontend on 0.0.0.0:11100 to
# $SWITCHYARD_UPSTREAM. Mount your own over it (-v ./switchyard.yaml:/etc/switchyard/switchyard.yaml:ro).
COPY docker/switchyard.yaml /etc/switchyard/switchyard.yaml
USER 10001:10001
EXPOSE 11099 11100-11105
# The app handles SIGTERM itself (stop accepting, finish in-flight requests, exit 0): Node as
# PID 1 gets no default signal handling, so no init wrapper is needed for a clean stop.
STOPSIGNAL SIGTERM
# Node's own fetch: no curl in the image. Point SWITCHYARD_HEALTH_URL elsewhere when the stats
# listener is not on 11099.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.SWITCHYARD_HEALTH_URL||'http://127.0.0.1:11099/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/switchyard.js"]
CMD ["--config", "/etc/switchyard/switchyard.yaml"]
