"""What builds, runs and checks a Bento but never ships in one: packaging (`packaging`), the service's process
control (`server`), podman images and containers (`podman`, `container/`), the smoke test (`smoke`) and the
Kubernetes manifests (`k8s/`). The shipped service is `bento/`; `bento_ops/packaging.py` lists what a Bento carries.
"""
