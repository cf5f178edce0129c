"""hacluster's fork of pysyncobj's core (syncobj.py of pysyncobj 0.3.17, MIT): see FORK.md."""
