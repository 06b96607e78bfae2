"""The operator's tools: the ``paynet`` command line (:mod:`ops.cli`), which node
role runs which service (:mod:`ops.nodes`), the local network launcher and the
throwaway dev network, the demo, the audit, reconciliation and the ISO 20022
exports. Tools import the core and the services; the core and the services
never import them."""
