/// Connects reflectors (and the manifest source) to the caches.
enum ClusterStores {
  static func pods(_ cache: PodCache) -> Reflector<PodObject>.Store {
    Reflector<PodObject>.Store(
      replace: { objects in cache.replaceAll(objects.map { PodRecord($0, intern: { $0 }) }) },
      added: { cache.upsert(PodRecord($0, intern: { $0 })) },
      modified: { cache.upsert(PodRecord($0, intern: { $0 })) },
      deleted: { cache.delete(key: PodRecord($0, intern: { $0 }).key) },
      resourceVersion: { $0.metadata.resourceVersion })
  }

  static func namespaces(_ cache: NamespaceCache) -> Reflector<NamespaceObject>.Store {
    Reflector<NamespaceObject>.Store(
      replace: { objects in
        cache.replaceAll(objects.map { ($0.metadata.name, $0.metadata.annotations?[Annotations.permitted]) })
      },
      added: { cache.upsert(name: $0.metadata.name, permitted: $0.metadata.annotations?[Annotations.permitted]) },
      modified: { cache.upsert(name: $0.metadata.name, permitted: $0.metadata.annotations?[Annotations.permitted]) },
      deleted: { cache.delete(name: $0.metadata.name) },
      resourceVersion: { $0.metadata.resourceVersion })
  }
}
