# The image compose.yaml runs for the issuer and the redeemer (`qunma issuer|redeemer`).
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY qunma ./qunma
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 qunma
USER qunma
EXPOSE 8081 8082
