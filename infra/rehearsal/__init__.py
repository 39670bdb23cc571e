"""The rehearsal: the whole stack deployed to emulated AWS (moto_server) through the
real Pulumi program, then invoked from the deployed package. See docs/rehearsal.md."""
