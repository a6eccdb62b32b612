# syntax=docker/dockerfile:1
# mcpauth container image: a static binary on an empty base image.
#
#   docker build -t mcpauth .
#   docker run -p 127.0.0.1:8080:8080 -v mcpauth-data:/data mcpauth
#
# The defaults serve SQLite in the /data volume on port 8080 with issuer
# http://localhost:8080, which a browser on the host can use. Anywhere else,
# set MCPAUTH_ISSUER to the https URL clients reach (TLS at your proxy), e.g.
#   docker run -e MCPAUTH_ISSUER=https://auth.example.com ... mcpauth
# Every serve flag has an MCPAUTH_* variable (mcpauth serve --help); for
# several replicas on PostgreSQL see deploy/compose.yaml.

FROM golang:1.26 AS build
WORKDIR /src
ENV GOCACHE=/cache/go-build
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# deploy/build.sh holds the build flags; make build-release runs it too.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/cache/go-build \
    sh deploy/build.sh /rootfs/usr/local/bin/mcpauth
# The runtime image has no shell: prepare its few files here. The CA bundle
# is for fetching https client metadata documents; /tmp is for SQLite's
# temporary files; /data belongs to the numeric non-root user below.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /data \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && chmod 1777 /rootfs/tmp \
 && chmod 0700 /data

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /data /data
ENV PATH=/usr/local/bin
USER 65532:65532
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["mcpauth"]
CMD ["serve", "--data", "/data", "--addr", "0.0.0.0:8080"]
