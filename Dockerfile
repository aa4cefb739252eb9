FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY bench ./bench
COPY bin ./bin
COPY test/support ./test/support
COPY web ./web
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV FERRY_HOME=/var/lib/ferry
ENTRYPOINT ["node", "/app/bin/ferry.js"]
