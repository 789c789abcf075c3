// The HTTP server (see HeraldServer.swift once written).
