//! WeChat callback protocol: signatures, inbound XML messages, passive replies, safe-mode crypto.
