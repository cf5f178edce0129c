#!/usr/bin/env bash
# Vagrant provisioning of one lab host: libvirt, hacluster, config, systemd unit.
# Usage: provision.sh NAME "hv1=IP,hv2=IP,..."
set -euo pipefail
name=$1; members=$2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libvirt-daemon-system qemu-system-x86 \
    libvirt-dev pkg-config gcc python3-dev python3-venv
python3 -m venv /opt/hacluster-venv
/opt/hacluster-venv/bin/pip install -q /opt/hacluster
ln -sf /opt/hacluster-venv/bin/haclusterd /opt/hacluster-venv/bin/hactl /usr/local/bin/
id hacluster >/dev/null 2>&1 || useradd --system --home /var/lib/hacluster --shell /usr/sbin/nologin \
    --groups libvirt hacluster
install -d -m 0750 -o root -g hacluster /etc/hacluster
# The CA, this box's certificate and key, the admin token's hash and the cluster secret were
# made on the host (Vagrantfile trigger) and arrive with the synced folder.
pki=/opt/hacluster/vagrant/.pki
install -m 0644 "$pki/ca.pem" "$pki/$name.pem" "$pki/admin.token.sha256" /etc/hacluster/
install -m 0640 -g hacluster "$pki/$name.key" "$pki/cluster.secret" /etc/hacluster/
install -d -m 0700 /root/.config/hacluster
install -m 0600 "$pki/admin.token" /root/.config/hacluster/token
{
  echo "name = \"$name\""
  echo 'libvirt_uri = "qemu:///system"'
  echo '[tls]'
  echo 'ca = "/etc/hacluster/ca.pem"'
  echo "cert = \"/etc/hacluster/$name.pem\""
  echo "key = \"/etc/hacluster/$name.key\""
  echo 'admin_token_sha256_file = "/etc/hacluster/admin.token.sha256"'
  echo '[cluster]'
  echo 'secret_file = "/etc/hacluster/cluster.secret"'
  echo 'members = ['
  IFS=, read -ra pairs <<< "$members"
  for pair in "${pairs[@]}"; do
    n=${pair%%=*}; ip=${pair#*=}
    echo "  { name = \"$n\", raft = \"$ip:7400\", api = \"$ip:7401\" },"
  done
  echo ']'
} > /etc/hacluster/haclusterd.toml
install -m 0644 /opt/hacluster/systemd/haclusterd.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now haclusterd
{
  echo "export HACTL_ENDPOINTS=$(echo "$members" | sed 's/hv[0-9]*=//g; s/,/:7401,/g'):7401"
  echo "export HACTL_CA=/etc/hacluster/ca.pem"
} > /etc/profile.d/hactl.sh
