# registrar: a multi-stage build. The first stage compiles, the second is what runs: a slim
# Debian with the one binary, as an unprivileged user. No TLS library is needed (the service
# speaks plain amqp:// and postgres://; put TLS in front of it or in the network).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache the registry and the build between image builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bootstrap --bin registrar \
    && cp target/release/registrar /usr/local/bin/registrar

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home registrar
COPY --from=build /usr/local/bin/registrar /usr/local/bin/registrar
USER registrar
ENV HTTP_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["registrar"]
CMD ["serve"]
