# Paywire's production image. Build: docker build -t paywire .   Run: see docker-compose.yml.
# CI has no Docker daemon; scripts/image-steps.mjs performs these very steps (it reads this file), so the
# image cannot rot unseen. Keep to the instructions it knows: FROM, WORKDIR, ENV, COPY, RUN, USER, EXPOSE,
# HEALTHCHECK and CMD in exec form.

# Build: every dependency, TypeScript compiled to dist/.
FROM node:22.23.5-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ormconfig.ts ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# Run: production dependencies only, the compiled output, a user without privileges.
FROM node:22.23.5-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/home/node/.paywire
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
USER node
EXPOSE 3000
# Ready means the database answers and the projector keeps up (GET /health/ready); migrations run at start.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
