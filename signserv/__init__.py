"""signserv: a signing service for the IBM HPCS TKE signing-service contract."""
