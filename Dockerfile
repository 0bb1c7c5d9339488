# signserv: the TKE signing service. Keys live on the /var/lib/signserv volume.
#   docker build -t signserv .
#   docker run --rm -v signserv:/var/lib/signserv signserv init
#   docker run --rm -v signserv:/var/lib/signserv signserv keys create admin1
#   docker run -d -p 127.0.0.1:8080:8080 -v signserv:/var/lib/signserv signserv
# The master key may instead come from a Docker secret: SIGNSERV_MASTER_KEY_FILE=/run/secrets/...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SIGNSERV_HOME=/var/lib/signserv

RUN useradd --system --uid 10001 --home-dir /var/lib/signserv --shell /usr/sbin/nologin signserv \
    && install -d -o signserv -g signserv -m 0700 /var/lib/signserv

WORKDIR /opt/signserv
COPY setup.cfg pyproject.toml README.md LICENSE ./
COPY foundation ./foundation
COPY keystore ./keystore
COPY signserv ./signserv
# The README's install step, with the pkcs11 extra (python-pkcs11, a manylinux wheel): keys can
# then live in an HSM whose PKCS#11 module is mounted in (docker run -v /usr/lib/<vendor>:...:ro)
# and named by the config's 'pkcs11' section. The image ships no HSM module of its own.
RUN python3 -m pip install --no-cache-dir '.[pkcs11]'

USER signserv
VOLUME ["/var/lib/signserv"]
EXPOSE 8080

# Plain HTTP on loopback: with the `tls` settings, override it (docker run --health-cmd ...)
# to query https://127.0.0.1:8080/healthz with the service's CA.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status != 200)"]

ENTRYPOINT ["signserv"]
# Inside the container the service must listen on all interfaces; publish the port on a
# loopback address of the host, or put TLS in front of it.
CMD ["serve", "--bind", "0.0.0.0:8080"]
