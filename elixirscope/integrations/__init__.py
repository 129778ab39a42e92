"""Web requests and outgoing HTTP, recorded (see README "Web requests and outgoing HTTP")."""
