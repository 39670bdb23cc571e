"""The local cloud: emulated AWS on this machine (moto_server), for the rehearsal, the
tests and `scripts/deploy.sh --local`. Not infrastructure: nothing here is deployed."""
