"""The real-time gateway: Socket.IO at /socket.io, rooms, presence, ordered chat with replay."""
