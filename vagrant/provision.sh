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
# The same secret on every box (derived from the Vagrant project, fine for a lab only).
echo "vagrant-lab-secret-$(echo "$members" | sha256sum | cut -c1-32)" > /etc/hacluster/cluster.secret
chown root:hacluster /etc/hacluster/cluster.secret; chmod 0640 /etc/hacluster/cluster.secret
{
  echo "name = \"$name\""
  echo 'libvirt_uri = "qemu:///system"'
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
echo "export HACTL_ENDPOINTS=$(echo "$members" | sed 's/hv[0-9]*=//g; s/,/:7401,/g'):7401" \
    > /etc/profile.d/hactl.sh
