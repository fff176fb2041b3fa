import Foundation
import LopperTesting
import Testing
import Yams

/// Offline checks of the deployment files in `Cluster/`: the Kubernetes manifests parse and agree
/// with each other, the Slurm template has the expected shape, and every script is valid bash.
@Suite struct ClusterFilesTests {
    /// The repository root: this file is `Tests/LopperCoordinationTests/ClusterFilesTests.swift`.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()
    static let cluster = root.appendingPathComponent("Cluster")
    static let k8s = cluster.appendingPathComponent("k8s")
    static let sbatch = cluster.appendingPathComponent("slurm/lopper-sweep.sbatch")

    typealias Object = [String: Any]

    /// A YAML mapping with string keys, or nil.
    static func object(_ value: Any?) -> Object? {
        guard let mapping = value as? [AnyHashable: Any] else { return nil }
        var result: Object = [:]
        for (key, value) in mapping {
            guard let key = key.base as? String else { return nil }
            result[key] = value
        }
        return result
    }

    static func string(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        if let number = value as? Int { return String(number) }
        return nil
    }

    /// Follows a path of keys through nested mappings.
    static func value(_ object: Object, _ path: String...) -> Any? {
        var current: Any? = object
        for key in path { current = Self.object(current)?[key] }
        return current
    }

    static func manifestFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: k8s.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
            .map { k8s.appendingPathComponent($0) }
    }

    /// Every document of a YAML file, each a mapping (documents holding only comments are skipped).
    static func documents(_ file: URL) throws -> [Object] {
        let text = try String(contentsOf: file, encoding: .utf8)
        // Iterated by hand: a for-in loop would end silently on a parse error.
        var sequence = try Yams.load_all(yaml: text)
        var documents: [Object] = []
        while let document = sequence.next() {
            documents.append(try #require(object(document), "\(file.lastPathComponent): a document is not a mapping"))
        }
        if let error = sequence.error { throw error }
        return documents
    }

    static func resource(kind: String, in file: String) throws -> Object {
        let documents = try Self.documents(k8s.appendingPathComponent(file))
        let matches = documents.filter { string($0["kind"]) == kind }
        try #require(matches.count == 1, "\(file) should hold exactly one \(kind), holds \(matches.count)")
        return matches[0]
    }

    static func name(_ resource: Object) -> String? { string(value(resource, "metadata", "name")) }

    /// The pod template's first container of a workload.
    static func container(_ workload: Object) throws -> Object {
        let containers = try #require(value(workload, "spec", "template", "spec", "containers") as? [Any])
        return try #require(object(containers.first), "\(name(workload) ?? "?") has no container")
    }

    static func args(_ container: Object) throws -> [String] {
        let args = try #require(container["args"] as? [Any], "the container has no args")
        return try args.map { try #require(string($0), "an argument is not a string") }
    }

    /// The value after `option` in an argument list.
    static func option(_ option: String, in args: [String]) -> String? {
        guard let index = args.firstIndex(of: option), index + 1 < args.count else { return nil }
        return args[index + 1]
    }

    /// The pod volumes of a workload by name.
    static func volumes(_ workload: Object) -> [String: Object] {
        let list = value(workload, "spec", "template", "spec", "volumes") as? [Any] ?? []
        var volumes: [String: Object] = [:]
        for case let volume? in list.map({ object($0) }) {
            if let name = string(volume["name"]) { volumes[name] = volume }
        }
        return volumes
    }

    /// Where the container mounts the volume that satisfies `isWanted`.
    static func mountPath(of container: Object, in workload: Object, where isWanted: (Object) -> Bool) -> String? {
        let volumes = Self.volumes(workload)
        let mounts = container["volumeMounts"] as? [Any] ?? []
        for case let mount? in mounts.map({ object($0) }) {
            if let name = string(mount["name"]), let volume = volumes[name], isWanted(volume) { return string(mount["mountPath"]) }
        }
        return nil
    }

    @Test func everyManifestParsesAndNamesItself() throws {
        let files = try Self.manifestFiles()
        #expect(files.count >= 5, "expected the coordinator, workers, secret, config map and kustomization manifests")
        for file in files {
            let documents = try Self.documents(file)
            #expect(!documents.isEmpty, "\(file.lastPathComponent) holds no document")
            for document in documents {
                let label = "\(file.lastPathComponent) (\(Self.string(document["kind"]) ?? "no kind"))"
                #expect(!(Self.string(document["apiVersion"]) ?? "").isEmpty, "\(label): no apiVersion")
                #expect(!(Self.string(document["kind"]) ?? "").isEmpty, "\(label): no kind")
                // A Kustomization is not a Kubernetes object; old kustomize refuses a name on it.
                if Self.string(document["kind"]) != "Kustomization" {
                    #expect(!(Self.name(document) ?? "").isEmpty, "\(label): no metadata.name")
                }
            }
        }
    }

    @Test func kustomizationListsExistingManifests() throws {
        let kustomization = try Self.resource(kind: "Kustomization", in: "kustomization.yaml")
        let resources = try #require(kustomization["resources"] as? [Any]).compactMap { Self.string($0) }
        for file in ["coordinator.yaml", "workers.yaml"] { #expect(resources.contains(file), "kustomization.yaml does not list \(file)") }
        for resource in resources {
            #expect(FileManager.default.fileExists(atPath: Self.k8s.appendingPathComponent(resource).path),
                    "kustomization.yaml lists \(resource), which does not exist")
        }
    }

    /// `kubectl` on the PATH (Debian's kubernetes-client, installed by `.ci/setup --test`), or nil.
    static let kubectl: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
        .split(separator: ":").map { "\($0)/kubectl" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `kubectl kustomize` renders exactly the objects of the files the kustomization lists.
    @Test(.enabled(if: kubectl != nil || Fixtures.isCI, "kubectl not found: apt-get install kubernetes-client (.ci/setup --test does)"))
    func kustomizeRendersTheListedManifests() throws {
        let kubectl = try #require(Self.kubectl, "kubectl not found: .ci/setup --test installs kubernetes-client")
        let rendered = try Reference.run([kubectl, "kustomize", Self.k8s.path])
        try #require(rendered.status == 0, "kubectl kustomize failed: \(rendered.stderr)")
        var sequence = try Yams.load_all(yaml: rendered.stdout)
        var objects: [String] = []
        while let document = sequence.next() {
            let object = try #require(Self.object(document), "kubectl kustomize printed a document that is not a mapping")
            objects.append("\(Self.string(object["kind"]) ?? "?")/\(Self.name(object) ?? "?")")
        }
        if let error = sequence.error { throw error }

        let kustomization = try Self.resource(kind: "Kustomization", in: "kustomization.yaml")
        let listed = try #require(kustomization["resources"] as? [Any]).compactMap { Self.string($0) }
            .flatMap { try Self.documents(Self.k8s.appendingPathComponent($0)) }
            .map { "\(Self.string($0["kind"]) ?? "?")/\(Self.name($0) ?? "?")" }
        #expect(objects.sorted() == listed.sorted())
        #expect(Set(objects).isSuperset(of: ["ConfigMap/lopper-sweep", "Service/lopper-coordinator",
                                             "StatefulSet/lopper-coordinator", "Deployment/lopper-workers"]))
    }

    @Test func coordinatorListensWhereWorkersConnect() throws {
        let service = try Self.resource(kind: "Service", in: "coordinator.yaml")
        let statefulSet = try Self.resource(kind: "StatefulSet", in: "coordinator.yaml")
        let deployment = try Self.resource(kind: "Deployment", in: "workers.yaml")

        let serviceName = try #require(Self.name(service))
        let ports = try #require(Self.value(service, "spec", "ports") as? [Any]).compactMap { Self.object($0) }
        let servicePort = try #require(ports.first.flatMap { $0["port"] as? Int }, "the Service has no port")
        #expect(Self.string(Self.value(statefulSet, "spec", "replicas")) == "1", "one coordinator per sweep")
        #expect(Self.string(Self.value(statefulSet, "spec", "serviceName")) == serviceName)
        #expect(Self.value(statefulSet, "spec", "volumeClaimTemplates") is [Any], "the store needs a volume claim template")

        let coordinator = try Self.args(try Self.container(statefulSet))
        #expect(coordinator.first == "coordinator")
        let listen = try #require(Self.option("--listen", in: coordinator), "the coordinator has no --listen")
        #expect(URLComponents(string: listen)?.port == servicePort, "the coordinator listens on \(listen), the Service port is \(servicePort)")
        #expect(Self.option("--db", in: coordinator)?.hasPrefix("/data/") == true, "the store should be on the /data volume")

        let worker = try Self.args(try Self.container(deployment))
        #expect(worker.first == "worker")
        let connect = try #require(Self.option("--connect", in: worker), "the workers have no --connect")
        let address = try #require(URLComponents(string: connect), "\(connect) is not a URL")
        #expect(address.host == serviceName || address.host?.hasPrefix(serviceName + ".") == true,
                "workers dial \(address.host ?? "?"), the Service is \(serviceName)")
        #expect(address.port == servicePort, "workers dial port \(address.port.map { String($0) } ?? "?"), the Service port is \(servicePort)")
    }

    @Test func referencedSecretsAndConfigMapsExist() throws {
        let secretNames = try Self.documents(Self.k8s.appendingPathComponent("secret.example.yaml"))
            .filter { Self.string($0["kind"]) == "Secret" }.compactMap { Self.name($0) }
        let configMapNames = try Self.manifestFiles().flatMap { try Self.documents($0) }
            .filter { Self.string($0["kind"]) == "ConfigMap" }.compactMap { Self.name($0) }

        let statefulSet = try Self.resource(kind: "StatefulSet", in: "coordinator.yaml")
        let deployment = try Self.resource(kind: "Deployment", in: "workers.yaml")
        for workload in [statefulSet, deployment] {
            let label = Self.name(workload) ?? "?"
            let volumes = Self.volumes(workload).values
            let secrets = volumes.compactMap { Self.string(Self.value($0, "secret", "secretName")) }
            #expect(!secrets.isEmpty, "\(label) mounts no Secret")
            for secret in secrets { #expect(secretNames.contains(secret), "\(label) uses Secret \(secret), not in secret.example.yaml") }
            for map in volumes.compactMap({ Self.string(Self.value($0, "configMap", "name")) }) {
                #expect(configMapNames.contains(map), "\(label) uses ConfigMap \(map), defined nowhere in Cluster/k8s")
            }

            // --token-file points into the Secret's mount.
            let container = try Self.container(workload)
            let tokenFile = try #require(Self.option("--token-file", in: try Self.args(container)), "\(label) passes no --token-file")
            let mount = try #require(Self.mountPath(of: container, in: workload) { $0["secret"] != nil }, "\(label) does not mount its Secret")
            #expect(tokenFile.hasPrefix(mount.hasSuffix("/") ? mount : mount + "/"), "\(label): \(tokenFile) is not under \(mount)")
        }

        // The coordinator's --config points into the config map's mount.
        let container = try Self.container(statefulSet)
        let config = try #require(Self.option("--config", in: try Self.args(container)), "the coordinator passes no --config")
        let mount = try #require(Self.mountPath(of: container, in: statefulSet) { $0["configMap"] != nil }, "the coordinator mounts no ConfigMap")
        #expect(config.hasPrefix(mount.hasSuffix("/") ? mount : mount + "/"), "\(config) is not under \(mount)")
    }

    @Test func slurmTemplateRunsCoordinatorAndWorkers() throws {
        let text = try String(contentsOf: Self.sbatch, encoding: .utf8)
        #expect(text.hasPrefix("#!/bin/bash\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains { $0.hasPrefix("#SBATCH ") }, "no #SBATCH lines")
        // Each directive must come before the first command, or Slurm ignores it.
        if let firstCommand = lines.firstIndex(where: { !$0.isEmpty && !$0.hasPrefix("#") }),
           let lastDirective = lines.lastIndex(where: { $0.hasPrefix("#SBATCH") }) {
            #expect(lastDirective < firstCommand, "an #SBATCH line follows a command and would be ignored")
        }
        // `lopper coordinator`, with the binary possibly in a variable ("$LOPPER" coordinator).
        let commands = lines.filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }.joined(separator: "\n")
        #expect(commands.contains(try Regex(#"lopper\}?"?\s+coordinator\b"#).ignoresCase()), "the coordinator is not started")
        #expect(commands.contains(try Regex(#"(?m)^\s*srun\s"#)), "the workers are not started with srun")
        #expect(commands.contains("worker --connect"))
        #expect(commands.contains("scontrol show hostnames"))
    }

    @Test func scriptsAreExecutableValidBash() throws {
        let scripts = try FileManager.default.contentsOfDirectory(atPath: Self.cluster.path)
            .filter { $0.hasSuffix(".sh") }.sorted()
            .map { Self.cluster.appendingPathComponent($0) } + [Self.sbatch, Self.cluster.appendingPathComponent("slurm/local-slurm.sh")]
        #expect(scripts.count >= 5, "expected local.sh, netns.sh, netns-sweep.sh, the sbatch template and local-slurm.sh")
        for script in scripts {
            let name = script.lastPathComponent
            #expect(FileManager.default.isExecutableFile(atPath: script.path), "\(name) is not executable")
            #expect(try String(contentsOf: script, encoding: .utf8).hasPrefix("#!/bin/bash"), "\(name) has no bash shebang")

            let bash = Process()
            bash.executableURL = URL(fileURLWithPath: "/bin/bash")
            bash.arguments = ["-n", script.path]
            let errors = Pipe()
            bash.standardError = errors
            bash.standardOutput = FileHandle.nullDevice
            try bash.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            bash.waitUntilExit()
            #expect(bash.terminationStatus == 0, "bash -n \(name): \(message)")
        }
    }
}
