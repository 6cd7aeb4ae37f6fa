import Foundation

/// Builds the scheduler a diffusers `scheduler_config.json` names in `_class_name`.
public enum SchedulerFactory {
    static let types: [any Scheduler.Type] = [
        EulerDiscreteScheduler.self,
        EulerAncestralDiscreteScheduler.self,
        LCMScheduler.self,
        DDIMScheduler.self,
        TCDScheduler.self,
        FlowMatchEulerDiscreteScheduler.self,
    ]

    public static var supportedClassNames: [String] { types.map { $0.className } }

    /// Loads `scheduler_config.json` from `directory`: a pipeline's `scheduler/` folder,
    /// or the pipeline folder itself (then its `scheduler/` subfolder is used).
    public static func load(directory: String) throws -> any Scheduler {
        let fm = FileManager.default
        let direct = directory + "/scheduler_config.json"
        if fm.fileExists(atPath: direct) { return try make(configFile: direct) }
        let nested = directory + "/scheduler/scheduler_config.json"
        if fm.fileExists(atPath: nested) { return try make(configFile: nested) }
        throw ModelError.fileNotFound(path: direct, what: "scheduler config")
    }

    public static func make(configFile: String) throws -> any Scheduler {
        try make(config: ConfigReader(file: configFile))
    }

    public static func make(config r: ConfigReader) throws -> any Scheduler {
        guard let name = try r.optionalString("_class_name") else {
            throw ModelError.invalidConfig(
                file: r.file, key: "_class_name",
                reason: "missing; expected one of \(supportedClassNames.joined(separator: ", "))")
        }
        guard let type = types.first(where: { $0.className == name }) else {
            throw ModelError.invalidConfig(
                file: r.file, key: "_class_name",
                reason: "scheduler '\(name)' is not supported (supported: \(supportedClassNames.joined(separator: ", ")))")
        }
        return try type.init(r)
    }
}
