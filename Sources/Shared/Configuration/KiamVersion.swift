/// The version printed by `kiam version`.
public enum KiamVersion {
  public static let current = "0.1.0"
}
