"""The lab: a whole cluster on one machine, for trying hacluster and for its tests and
benchmarks (`hactl lab ...`). Nothing here runs on a production host.

- cluster: lab directories, hosts (libvirtd, keeper, watchdog, haclusterd per host), up/down
- qemu: the real-hypervisor lab (network namespaces, a QEMU libvirtd per host, tiny guests)
- watchdog, keeper, fence: the per-host helper processes (`python -m hacluster.lab.X`)
- netfault: cutting and healing links between lab hosts (iptables)
- oracle: every host's own libvirt watched, to catch a VM running twice and time outages
- web_client: a plain HTTPS client of the web console's JSON API and event streams
"""
