# ecr-backup worker: one Fargate task copies one batch of images between ECR and the S3 store.
# Build: the whole repository is the context; .dockerignore keeps only what the bundle needs.
# The npm package ships a context with the bundles prebuilt: `npm run build` writes
# dist/assets/worker-image/Dockerfile from this file's last stage (scripts/build.ts).

FROM public.ecr.aws/docker/library/node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/build.ts
COPY infra/assets.ts ./infra/assets.ts
COPY schema ./schema
COPY core ./core
COPY worker ./worker
# One self-contained ESM file each for the worker and the drill (scripts/build.ts): no node_modules
# in the runtime image.
RUN npx tsx scripts/build.ts worker drill

FROM public.ecr.aws/docker/library/node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends skopeo ca-certificates zstd \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/dist/worker.mjs /src/dist/drill.mjs /app/
ENV NODE_ENV=production
# The image's own unprivileged user (uid 1000).
USER node
CMD ["node", "/app/worker.mjs"]
