#!/bin/sh
# One-shot set-up of the compose stack's topics and ACLs, run by the `kafka-setup` service
# (the agora-events image, as the broker's `admin` principal) once the broker is healthy.
# Every step is idempotent: existing topics and ACLs are kept.
#
# Each service's principal gets exactly the ACLs of its component (webhook/acls.py,
# docs/security.md); a principal without ACLs is refused everything
# (allow.everyone.if.no.acl.found=false in docker/kafka/server.properties).
set -eu

agora-events topics create --partitions 6 --replication-factor 1
agora-events topics acls webhook --principal User:webhook --apply
agora-events topics acls handlers --principal User:handlers --apply
agora-events topics acls reconciler --principal User:reconciler --apply
agora-events topics acls operator --principal User:operator --apply
