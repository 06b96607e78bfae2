"""paynet's shared core: config, PKI, mTLS identity and authorization, errors,
logging, storage, the payment envelope, the CLI and the customer client.

Service packages (gateway, bank, merchant) share only this package and the
generated ``interbank`` contracts.
"""
