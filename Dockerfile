# ecr-backup worker: one Fargate task copies one batch of images between ECR and the S3 store.
# Build: the whole repository is the context; .dockerignore keeps only what the bundle needs.

FROM public.ecr.aws/docker/library/node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY schema ./schema
COPY worker ./worker
# One self-contained ESM file: no node_modules in the runtime image.
RUN npx esbuild worker/main.ts --bundle --platform=node --target=node22 --format=esm \
      --main-fields=module,main \
      --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" \
      --outfile=/out/worker.mjs

FROM public.ecr.aws/docker/library/node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends skopeo ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out/worker.mjs /app/worker.mjs
ENV NODE_ENV=production
# The image's own unprivileged user (uid 1000).
USER node
CMD ["node", "/app/worker.mjs"]
