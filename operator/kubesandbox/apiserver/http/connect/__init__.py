"""The connect subresources of pods: `exec`, `attach` and `portforward`, over the streaming
protocols kubectl and the official clients speak (WebSocket channels, SPDY/3.1 tunnelled
in a WebSocket); the pod's node (`podstreams.PodStreams`) runs the other end."""
