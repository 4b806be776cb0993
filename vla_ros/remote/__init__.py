"""The openpi WebSocket policy protocol: msgpack-numpy frames, client, server and observation layouts."""
